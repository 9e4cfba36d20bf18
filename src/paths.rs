//! Where freshd's files are: the config, the state directory and the
//! control socket, from the config, systemd's directory variables
//! (`$STATE_DIRECTORY`, `$RUNTIME_DIRECTORY`) and XDG, in that order.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// Where the config is looked for when `--config` is not given.
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("FRESHD_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    if let Some(dir) = xdg_dir("XDG_CONFIG_HOME", ".config") {
        return dir.join("freshd/config.toml");
    }
    PathBuf::from("/etc/freshd/config.toml")
}

/// `$VAR`, else `$HOME/fallback`, as XDG says.
pub fn xdg_dir(var: &str, fallback: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME")
        .filter(|p| !p.is_empty())
        .map(|home| PathBuf::from(home).join(fallback))
}

/// The first directory of a systemd directory variable (`$STATE_DIRECTORY`,
/// `$RUNTIME_DIRECTORY`): systemd may list several, separated by ':'.
fn systemd_dir(var: &str) -> Option<PathBuf> {
    let dirs = std::env::var_os(var).filter(|d| !d.is_empty())?;
    let first = dirs
        .to_string_lossy()
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    Some(PathBuf::from(first))
}

/// `[daemon] state_dir`, else `$STATE_DIRECTORY`, else `$XDG_STATE_HOME/freshd`.
pub fn state_dir(config: &Config) -> Option<PathBuf> {
    if let Some(d) = &config.daemon.state_dir {
        return Some(d.clone());
    }
    if let Some(d) = systemd_dir("STATE_DIRECTORY") {
        return Some(d);
    }
    xdg_dir("XDG_STATE_HOME", ".local/state").map(|d| d.join("freshd"))
}

/// Where the socket is: `[daemon] socket`, else `$RUNTIME_DIRECTORY`, else
/// `$XDG_RUNTIME_DIR/freshd`, else `/run/freshd` (the system unit's).
pub fn socket_path(configured: Option<&Path>) -> PathBuf {
    if let Some(p) = configured {
        return p.to_owned();
    }
    if let Some(dir) = systemd_dir("RUNTIME_DIRECTORY") {
        return dir.join("control.sock");
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("freshd/control.sock");
    }
    PathBuf::from("/run/freshd/control.sock")
}
