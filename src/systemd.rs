//! What freshd says to systemd, and how it logs.
//!
//! Notifications go to `$NOTIFY_SOCKET` (absent outside a `Type=notify`
//! unit, in which case they are no-ops). Logs go through journald's native
//! protocol when stderr is the journal stream systemd gave us
//! (`$JOURNAL_STREAM` names stderr's device and inode), so that fields such
//! as `JOB=` and `ACCOUNT=` survive and `journalctl -u freshd JOB=x` works;
//! otherwise they are plain text on stderr, coloured only on a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use sd_notify::NotifyState;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Sends `states` to systemd without ever blocking: the socket is
/// non-blocking, so a service manager that does not read (or a full queue)
/// costs a dropped message, never a stalled runtime. (`sd_notify`'s own send
/// blocks, which froze freshd's one thread when the queue filled up.)
/// Failures are logged at debug level only: a daemon run by hand has no one
/// to tell.
fn notify(states: &[NotifyState<'_>]) {
    use std::fmt::Write;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET").filter(|p| !p.is_empty()) else {
        return;
    };
    let mut message = String::new();
    for state in states {
        let _ = writeln!(message, "{state}");
    }
    if let Err(e) = send_nonblocking(&path, message.as_bytes()) {
        tracing::debug!("cannot notify systemd: {e}");
    }
}

fn send_nonblocking(path: &std::ffi::OsStr, message: &[u8]) -> std::io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let socket = UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    let bytes = path.as_bytes();
    match bytes.strip_prefix(b"@") {
        // An abstract socket name.
        Some(name) => socket.send_to_addr(message, &SocketAddr::from_abstract_name(name)?),
        None => socket.send_to(message, path),
    }
}

/// `READY=1` with a status line.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// `STATUS=…`: the one-line summary `systemctl status` shows.
pub fn status(status: &str) {
    notify(&[NotifyState::Status(status)]);
}

/// `RELOADING=1` with `MONOTONIC_USEC`, as systemd asks of reloads.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[
            NotifyState::Reloading,
            now,
            NotifyState::Status("reloading configuration"),
        ]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}

/// `STOPPING=1`
pub fn stopping(status: &str) {
    notify(&[NotifyState::Stopping, NotifyState::Status(status)]);
}

/// `WATCHDOG=1`
pub fn watchdog() {
    notify(&[NotifyState::Watchdog]);
}

/// The watchdog interval systemd expects pings within, if it set one.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

/// Whether stderr is the journal stream of `$JOURNAL_STREAM` ("dev:ino").
/// fstat on fd 2 itself: stderr is a socket there, which cannot be opened
/// again through /proc.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = std::fs::File::from(fd).metadata() else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Starts logging at `level` (`error` … `trace`) for freshd's own events;
/// other crates log warnings and errors only, so that no library's trace
/// output (which may show request details) reaches the journal.
pub fn init_logging(level: &str) {
    let registry = tracing_subscriber::registry().with(log_filter(level));
    if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(layer) => {
                let layer = layer
                    .with_field_prefix(None)
                    .with_syslog_identifier("freshd".to_owned());
                registry.with(layer).init();
                return;
            }
            Err(e) => eprintln!("freshd: cannot reach journald ({e}); logging to stderr"),
        }
    }
    // https://no-color.org: any non-empty NO_COLOR turns colour off.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal() && !no_color)
        .with_timer(LocalSeconds)
        .with_target(false);
    registry.with(fmt).init();
}

/// freshd's events at `level`, other crates' at `warn`: a prefix match on
/// the target, as `RUST_LOG`-style filters do, without their regex engine
/// (issue 15: about 130 KiB of code and its start-up work).
fn log_filter(level: &str) -> Targets {
    let level = level.parse().unwrap_or(LevelFilter::INFO);
    Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("freshd", level)
}

/// Log times on stderr: local time to the second, as people read them, in
/// the system's zone as it was at the first line (found without jiff's
/// database of all zones: see [`crate::time::zone`]).
struct LocalSeconds;

impl tracing_subscriber::fmt::time::FormatTime for LocalSeconds {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        static ZONE: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
        let zone = ZONE.get_or_init(crate::time::zone::system);
        let now = jiff::Timestamp::now().to_zoned(zone.clone());
        write!(w, "{}", now.strftime("%Y-%m-%d %H:%M:%S"))
    }
}

/// Hands memory freed after start-up or a reload (the parsed config, the
/// first wave of HTTP exchanges) back to the system. glibc keeps freed heap
/// in its arenas otherwise, and for a daemon that then idles for months that
/// is resident memory for nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(unsafe_code, reason = "malloc_trim has no safe wrapper")]
pub fn release_free_memory() {
    // SAFETY: malloc_trim only returns free pages of the allocator's arenas
    // to the kernel; it takes no pointers and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other C libraries return memory on their own.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::log_filter;

    #[test]
    fn freshd_logs_at_its_level_and_libraries_only_warnings() {
        let debug = log_filter("debug");
        assert!(debug.would_enable("freshd::oauth::refresh", &Level::DEBUG));
        assert!(!debug.would_enable("freshd::oauth::refresh", &Level::TRACE));
        assert!(debug.would_enable("hyper_util::client", &Level::WARN));
        assert!(!debug.would_enable("hyper_util::client", &Level::INFO));
        assert!(!debug.would_enable("reqwest::connect", &Level::DEBUG));

        // A prefix of the target, as EnvFilter's `freshd=LEVEL` was: the
        // demo's fake provider (crate freshd_fake) logs at freshd's level.
        assert!(debug.would_enable("freshd_fake::token", &Level::DEBUG));
        assert!(!debug.would_enable("fresh", &Level::INFO));
        assert!(debug.would_enable("zbus::connection", &Level::WARN));
        assert!(!debug.would_enable("zbus::connection", &Level::INFO));

        let error = log_filter("error");
        assert!(!error.would_enable("freshd::daemon", &Level::WARN));
        assert!(error.would_enable("freshd::daemon", &Level::ERROR));
    }

    #[test]
    fn an_unknown_level_means_info() {
        let filter = log_filter("loud");
        assert!(filter.would_enable("freshd", &Level::INFO));
        assert!(!filter.would_enable("freshd", &Level::DEBUG));
    }
}
