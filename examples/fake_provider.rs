//! The fake OAuth provider and Web API as a process of its own, for tests
//! that run freshd somewhere the test's own process cannot reach into (the
//! systemd test boots a container that shares the host's loopback).
//!
//! `cargo run --example fake_provider -- PORT [TOKEN_LIFETIME_SECS]` serves
//! on 127.0.0.1:PORT (0 for any; the port is printed), with `/admin/issue`,
//! `/admin/revoke`, `/admin/secrets` and `/admin/token-requests` switched on.

use std::time::Duration;

use freshd_fake::{FakeOptions, FakeProvider};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().as_deref().unwrap_or("0").parse()?;
    let lifetime: u64 = args.next().as_deref().unwrap_or("3600").parse()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let fake = FakeProvider::start_on(
            port,
            FakeOptions {
                token_lifetime: Duration::from_secs(lifetime),
                rotate: true,
                client_id: "freshd-test-client".into(),
                admin: true,
            },
        )
        .await?;
        println!("{}", fake.addr.port());
        std::future::pending::<()>().await;
        Ok(())
    })
}
