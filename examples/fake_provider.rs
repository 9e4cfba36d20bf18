//! The fake OAuth provider and Web API as a process of its own, for tests
//! that run freshd somewhere the test's own process cannot reach into (the
//! systemd test boots a container that shares the host's loopback) and for
//! the benchmark harness, which keeps the provider out of both freshd's
//! process and its own.
//!
//! `cargo run --example fake_provider -- PORT [TOKEN_LIFETIME_SECS] [OPTIONS]`
//! serves on 127.0.0.1:PORT (0 for any; the port is printed), with
//! `/admin/issue`, `/admin/revoke`, `/admin/secrets` and
//! `/admin/token-requests` switched on. Options:
//!
//! - `--rate N`: answer at most N token requests a second; the rest wait
//!   their turn (a provider that is slow under load, not one that refuses);
//! - `--delay-ms N`: hold every token answer back N ms (a slow round trip);
//! - `--issue N DIR`: before printing the port, issue a refresh token for
//!   each of the users `a0` … `a{N-1}` into `DIR/aI.refresh_token` (the file
//!   layout of systemd credentials).
//!
//! With `--rate` or `--delay-ms` the fake listens behind a small front that
//! holds back each connection carrying `POST /api/token` (the fake answers
//! one request per connection) and then relays it unchanged.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use freshd_fake::{FakeOptions, FakeProvider};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

struct Args {
    port: u16,
    lifetime: u64,
    rate: Option<u32>,
    delay: Duration,
    issue: Option<(usize, PathBuf)>,
}

fn args() -> Result<Args> {
    let mut positional = Vec::new();
    let mut out = Args {
        port: 0,
        lifetime: 3600,
        rate: None,
        delay: Duration::ZERO,
        issue: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rate" => out.rate = Some(it.next().ok_or("--rate N")?.parse()?),
            "--delay-ms" => {
                out.delay = Duration::from_millis(it.next().ok_or("--delay-ms N")?.parse()?);
            }
            "--issue" => {
                let n = it.next().ok_or("--issue N DIR")?.parse()?;
                let dir = it.next().ok_or("--issue N DIR")?;
                out.issue = Some((n, dir.into()));
            }
            _ => positional.push(a),
        }
    }
    if let Some(p) = positional.first() {
        out.port = p.parse()?;
    }
    if let Some(l) = positional.get(1) {
        out.lifetime = l.parse()?;
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = args()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let front = args.rate.is_some() || !args.delay.is_zero();
        let fake = FakeProvider::start_on(
            if front { 0 } else { args.port },
            FakeOptions {
                token_lifetime: Duration::from_secs(args.lifetime),
                rotate: true,
                client_id: "freshd-test-client".into(),
                admin: true,
            },
        )
        .await?;
        if let Some((n, dir)) = &args.issue {
            std::fs::create_dir_all(dir)?;
            for i in 0..*n {
                let user = format!("a{i}");
                std::fs::write(
                    dir.join(format!("{user}.refresh_token")),
                    fake.issue_refresh_token(&user),
                )?;
            }
        }
        let port = if front {
            let listener = TcpListener::bind(("127.0.0.1", args.port)).await?;
            let port = listener.local_addr()?.port();
            tokio::spawn(serve_front(
                listener,
                fake.addr.port(),
                args.rate,
                args.delay,
            ));
            port
        } else {
            fake.addr.port()
        };
        println!("{port}");
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// Relays each connection to the fake on `inner`, holding token requests
/// to `rate` a second and back by `delay`.
async fn serve_front(listener: TcpListener, inner: u16, rate: Option<u32>, delay: Duration) {
    let spacing = rate.map_or(Duration::ZERO, |r| Duration::from_secs(1) / r.max(1));
    let next_slot = Arc::new(Mutex::new(Instant::now()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let next_slot = Arc::clone(&next_slot);
        tokio::spawn(async move {
            if is_token_request(&stream).await {
                let slot = {
                    let mut next = next_slot.lock().unwrap_or_else(|e| e.into_inner());
                    let slot = (*next).max(Instant::now());
                    *next = slot + spacing;
                    slot
                };
                tokio::time::sleep_until(slot + delay).await;
            }
            let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", inner)).await else {
                return;
            };
            let mut stream = stream;
            let _ = tokio::io::copy_bidirectional(&mut stream, &mut upstream).await;
        });
    }
}

/// Whether the connection's request is `POST /api/token` (peeked, so the
/// bytes stay for the relay).
async fn is_token_request(stream: &TcpStream) -> bool {
    const HEAD: &[u8] = b"POST /api/token";
    let mut buf = [0; HEAD.len()];
    for _ in 0..100 {
        match stream.peek(&mut buf).await {
            Ok(n) if n >= HEAD.len() || !HEAD.starts_with(&buf[..n]) || n == 0 => {
                return n >= HEAD.len() && buf == HEAD;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(_) => return false,
        }
    }
    false
}
