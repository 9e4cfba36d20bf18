//! `[daemon]`, and time zones (the daemon's and a job's `timezone`).

use std::path::PathBuf;
use std::time::Duration;

use jiff::tz::TimeZone;
use toml::Spanned;

use super::values::Ctx;
use crate::config::raw::RawDaemon;
use crate::config::{Daemon, SecretsMode};

/// Default for `[daemon] shutdown_grace`: systemd's own stop timeout is 90 s,
/// so 10 s leaves ample margin while letting a playlist write finish.
const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub(super) fn daemon(cx: &mut Ctx<'_>, raw: &RawDaemon) -> Option<Daemon> {
    let (timezone, timezone_name) = match &raw.timezone {
        Some(tz) => match timezone(cx, tz, "daemon.timezone") {
            Some(z) => z,
            None => (TimeZone::UTC, String::new()),
        },
        None => {
            let tz = crate::time::zone::system();
            let name = tz.iana_name().unwrap_or("system local time").to_owned();
            (tz, name)
        }
    };
    let secrets = raw
        .secrets
        .as_ref()
        .map_or(Some(SecretsMode::Keyring), |s| {
            cx.one_of(s, "daemon.secrets", SecretsMode::CHOICES)
        });
    let socket = raw
        .socket
        .as_ref()
        .map(|s| cx.absolute_path(s, "daemon.socket"));
    let state_dir = raw
        .state_dir
        .as_ref()
        .map(|s| cx.absolute_path(s, "daemon.state_dir"));
    let grace = raw
        .shutdown_grace
        .as_ref()
        .map_or(Some(DEFAULT_SHUTDOWN_GRACE), |g| {
            cx.duration(g, "daemon.shutdown_grace")
        });
    let notify = match &raw.notify {
        Some(n) => cx.argv(n, "daemon.notify").map(Some),
        None => Some(None),
    };
    Some(Daemon {
        notify: notify?,
        timezone,
        timezone_name,
        secrets: secrets?,
        socket: socket
            .unwrap_or(Some(PathBuf::new()))
            .filter(|p| !p.as_os_str().is_empty()),
        state_dir: state_dir
            .unwrap_or(Some(PathBuf::new()))
            .filter(|p| !p.as_os_str().is_empty()),
        shutdown_grace: grace?,
    })
}

pub(super) fn timezone(
    cx: &mut Ctx<'_>,
    value: &Spanned<String>,
    key: &str,
) -> Option<(TimeZone, String)> {
    match crate::time::zone::named(value.get_ref()) {
        Ok(tz) => Some((tz, value.get_ref().clone())),
        Err(_) => {
            cx.problem(
                value.span(),
                key,
                format!(
                    "\"{}\" is not a known time zone; use an IANA name such as \"Europe/Berlin\", \"America/New_York\" or \"UTC\"",
                    value.get_ref()
                ),
            );
            None
        }
    }
}
