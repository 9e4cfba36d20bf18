//! What freshd remembers of a refresh token besides the token itself, in
//! `<state_dir>/<account>.token-info.json`: when it was obtained, for
//! providers that limit a refresh token's life. Read and written here only
//! (the daemon and the commands reach it through `setup`).

use std::path::{Path, PathBuf};

/// The file's contents.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct TokenInfo {
    refresh_token_obtained_at: jiff::Timestamp,
}

fn token_info_path(state_dir: &Path, account: &str) -> PathBuf {
    state_dir.join(format!("{account}.token-info.json"))
}

/// When the account's refresh token was obtained, if that was recorded.
pub fn read_token_info(state_dir: &Path, account: &str) -> Option<jiff::Timestamp> {
    let (bytes, _) =
        crate::fsutil::read_regular(&token_info_path(state_dir, account), 4096).ok()?;
    serde_json::from_slice::<TokenInfo>(&bytes)
        .ok()
        .map(|i| i.refresh_token_obtained_at)
}

/// Forgets when the account's refresh token was obtained (a logout). A
/// file that is not there is fine.
pub fn remove_token_info(state_dir: &Path, account: &str) {
    let _ = std::fs::remove_file(token_info_path(state_dir, account));
}

/// Records that the account's refresh token was obtained at `at`; returns
/// the file's path with the error.
pub fn write_token_info(
    state_dir: &Path,
    account: &str,
    at: jiff::Timestamp,
) -> Result<(), (PathBuf, std::io::Error)> {
    let path = token_info_path(state_dir, account);
    let info = TokenInfo {
        refresh_token_obtained_at: at,
    };
    let text = serde_json::to_string(&info).unwrap_or_default();
    crate::fsutil::write_private(&path, text.as_bytes()).map_err(|e| (path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_is_read_back_and_a_logout_forgets_it() {
        let dir = tempfile::tempdir().unwrap();
        let at: jiff::Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
        assert_eq!(read_token_info(dir.path(), "a"), None);
        write_token_info(dir.path(), "a", at).unwrap();
        assert_eq!(read_token_info(dir.path(), "a"), Some(at));
        assert_eq!(read_token_info(dir.path(), "b"), None);
        remove_token_info(dir.path(), "a");
        assert_eq!(read_token_info(dir.path(), "a"), None);
        remove_token_info(dir.path(), "a");
    }
}
