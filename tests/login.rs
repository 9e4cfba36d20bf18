//! `freshd login` end to end: the test plays the browser, following the
//! printed URL to the fake provider's /authorize, which sends it back to
//! freshd's one-shot listener (or hands the redirect URL to paste).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a failure is a test failure

mod common;

use std::process::Stdio;

use common::{PATIENCE, Setup};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

struct Login {
    child: Child,
    stderr: Lines<BufReader<ChildStderr>>,
    port: u16,
}

async fn setup() -> (Setup, u16) {
    let port = common::free_port();
    let setup = Setup::new(3600, "").await;
    setup.write_config(&format!(
        "redirect_uri = \"http://127.0.0.1:{port}/callback\"\nauthorize_url = \"{}/authorize\"\nscopes = [\"user-read-currently-playing\"]\n",
        setup.fake.base_url()
    ));
    (setup, port)
}

async fn start(setup: &Setup, port: u16, args: &[&str]) -> (Login, String) {
    let mut child = Command::new(common::bin())
        .args(["login", "spotify"])
        .args(args)
        .arg("--config")
        .arg(&setup.config)
        .env("HOME", setup.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(PATIENCE, async {
        loop {
            let line = stderr
                .next_line()
                .await
                .unwrap()
                .expect("login printed no URL");
            if let Some(url) = line.trim().strip_prefix("http") {
                return format!("http{url}");
            }
        }
    })
    .await
    .unwrap();
    (
        Login {
            child,
            stderr,
            port,
        },
        url,
    )
}

impl Login {
    async fn finish(mut self) -> (i32, String) {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        let mut rest = String::new();
        while let Ok(Some(line)) = self.stderr.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        (status.code().unwrap_or(-1), rest)
    }
}

fn stored(setup: &Setup) -> Option<String> {
    std::fs::read_to_string(setup.state_dir().join("spotify.refresh_token")).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_the_loopback_listener_stores_a_working_refresh_token() {
    let (setup, port) = setup().await;
    let (login, url) = start(&setup, port, &["--no-browser"]).await;
    let parsed = reqwest::Url::parse(&url).unwrap();
    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["client_id"], "freshd-test-client");
    assert_eq!(
        q["redirect_uri"],
        format!("http://127.0.0.1:{port}/callback")
    );
    assert_eq!(q["scope"], "user-read-currently-playing");
    assert!(q["state"].len() >= 16);
    // The browser: the fake authorizes and redirects to freshd's listener.
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("You can close this tab")
    );
    let (code, err) = login.finish().await;
    assert_eq!(code, 0, "{err}");
    let token = stored(&setup).expect("the refresh token is stored");
    assert!(setup.fake.valid_refresh_tokens("spotify").contains(&token));
    for secret in setup.fake.issued_secrets() {
        assert!(!err.contains(&secret), "login printed a secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_state_is_refused_and_nothing_is_stored() {
    let (setup, port) = setup().await;
    let (login, _url) = start(&setup, port, &["--no-browser"]).await;
    let forged = format!(
        "http://127.0.0.1:{}/callback?code=stolen&state=forged",
        login.port
    );
    let page = reqwest::get(&forged).await.unwrap();
    assert_eq!(page.status(), 200);
    let (code, err) = login.finish().await;
    assert_eq!(code, 1);
    assert!(err.contains("`state` does not match"), "{err}");
    assert!(stored(&setup).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_is_explained() {
    let (setup, port) = setup().await;
    setup.fake.deny_authorization(true);
    let (login, url) = start(&setup, port, &["--no-browser"]).await;
    reqwest::get(&url).await.unwrap();
    let (code, err) = login.finish().await;
    assert_eq!(code, 1);
    assert!(err.contains("did not grant access: access_denied"), "{err}");
    assert!(stored(&setup).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paste_mode_takes_the_redirected_url() {
    let (setup, port) = setup().await;
    let (mut login, url) = start(&setup, port, &["--paste"]).await;
    // Nothing listens in paste mode; the browser's failed page has the URL.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client.get(&url).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        reqwest::get(&location).await.is_err(),
        "paste mode must not listen"
    );
    let mut stdin = login.child.stdin.take().unwrap();
    stdin
        .write_all(format!("{location}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let (code, err) = login.finish().await;
    assert_eq!(code, 0, "{err}");
    assert!(
        setup
            .fake
            .valid_refresh_tokens("spotify")
            .contains(&stored(&setup).unwrap())
    );
}
