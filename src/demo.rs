//! `freshd demo`: the real daemon against the fake provider, in-process,
//! with `config/demo.toml` (built in) and an in-memory secret store, so a
//! newcomer sees refreshes ahead of expiry and jobs running within a minute
//! without an account anywhere or a keyring.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use freshd_fake::web::Player;
use freshd_fake::{FakeOptions, FakeProvider};
use secrecy::SecretString;

use crate::config::Config;
use crate::daemon::{self, ConfigSource, Options};
use crate::secrets::memory::MemoryStore;
use crate::secrets::{SecretKind, SecretStore};

/// The demo's config, as shipped in `config/demo.toml`.
pub const DEMO_CONFIG: &str = include_str!("../config/demo.toml");

/// Access tokens of the simulated provider live this long: short enough to
/// see several refreshes in a minute.
const DEMO_TOKEN_LIFETIME: Duration = Duration::from_secs(20);

/// Runs the demo for `duration` (or until Ctrl-C); returns the exit code.
pub async fn run(duration: Option<Duration>) -> anyhow::Result<u8> {
    let fake = FakeProvider::start(FakeOptions {
        token_lifetime: DEMO_TOKEN_LIFETIME,
        client_id: "freshd-demo".into(),
        // Rotating refresh tokens, as Spotify's.
        ..FakeOptions::default()
    })
    .await?;
    let dir = std::env::temp_dir().join(format!("freshd-demo-{}", std::process::id()));
    let mut config = Config::parse(
        DEMO_CONFIG,
        Path::new("config/demo.toml"),
        true,
        crate::jobs::TYPES,
    )?;
    config.daemon.state_dir = Some(dir.join("state"));
    config.daemon.socket = Some(dir.join("control.sock"));
    fake.web().player = Player::Session {
        since: jiff::Timestamp::now(),
    };
    let store = Arc::new(MemoryStore::new());
    point_at_fake(&mut config, &fake, &store, &dir.join("state"))?;
    tracing::info!(
        "demo: a simulated provider on {} issues {}-second access tokens and rotating refresh tokens, and plays a session of tracks of 20 to 30 seconds; {}",
        fake.base_url(),
        DEMO_TOKEN_LIFETIME.as_secs(),
        match duration {
            Some(d) => format!("stopping after {}", crate::config::format_duration(d)),
            None => "Ctrl-C stops".to_owned(),
        }
    );
    let mut options = Options::new(ConfigSource::Fixed(Box::new(config)));
    options.store = Some(store);
    if let Some(d) = duration {
        let stop = options.stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(d).await;
            stop.cancel();
        });
    }
    let code = daemon::run(options).await;
    fake.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let code = code?;
    tracing::info!("demo: {}", what_the_provider_saw(&fake));
    Ok(code)
}

/// Points every account of `config` at the fake and gives each a refresh
/// token it issued, recorded as `freshd login` would.
fn point_at_fake(
    config: &mut Config,
    fake: &FakeProvider,
    store: &MemoryStore,
    state_dir: &Path,
) -> anyhow::Result<()> {
    crate::fsutil::ensure_private_dir(state_dir)?;
    for (name, account) in &mut config.accounts {
        let mut a = (**account).clone();
        a.token_url = Some(fake.token_url());
        a.api_base_url = Some(fake.api_base_url());
        a.authorize_url = Some(format!("{}/authorize", fake.base_url()));
        *account = Arc::new(a);
        let token = SecretString::from(fake.issue_refresh_token(name));
        store.set(name, SecretKind::RefreshToken, &token)?;
        // Issued just now, as `freshd login` would record it: the daemon
        // then knows the refresh token's age instead of saying it does not.
        let info = serde_json::json!({ "refresh_token_obtained_at": jiff::Timestamp::now() });
        crate::fsutil::write_private(
            &state_dir.join(format!("{name}.token-info.json")),
            info.to_string().as_bytes(),
        )?;
    }
    Ok(())
}

/// The demo's last line: requests the provider saw, and the playlists.
fn what_the_provider_saw(fake: &FakeProvider) -> String {
    let playlists: Vec<String> = fake
        .web()
        .playlists
        .iter()
        .map(|p| {
            format!(
                "\"{}\" ({} items, {})",
                p.name,
                p.items.len(),
                if p.public { "public" } else { "private" }
            )
        })
        .collect();
    format!(
        "the provider saw {} and {}; playlists: {}",
        count(fake.token_requests(), "token request"),
        count(fake.api_requests(), "API request"),
        if playlists.is_empty() {
            "none".to_owned()
        } else {
            playlists.join(", ")
        }
    )
}

/// `1 token request`, `2 token requests`.
fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(super::count(1, "token request"), "1 token request");
        assert_eq!(super::count(0, "token request"), "0 token requests");
        assert_eq!(super::count(7, "API request"), "7 API requests");
    }
}
