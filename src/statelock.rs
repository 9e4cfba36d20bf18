//! One daemon per state directory (DESIGN §4).
//!
//! Two daemons on one state directory fight over the same refresh tokens:
//! each presents the token the other already rotated, and a provider with
//! reuse detection revokes the grant. So the daemon holds an exclusive
//! `flock` on `STATE_DIR/freshd.lock` for as long as it runs, and a second
//! one refuses to start, naming the first one's pid.
//!
//! Invariants: the lock file is opened without following symlinks (a link
//! planted in the state directory cannot point the open elsewhere) and must
//! be a regular file; it has mode 0600 and holds the holder's pid. The
//! kernel drops the lock when the holder's descriptor closes, so a daemon
//! killed with SIGKILL never leaves a stale lock behind; the file itself
//! stays (removing it would let a third daemon lock a fresh inode while a
//! second one waits on the old).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "freshd.lock";

/// Why the state directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another freshd{} already uses the state directory {dir} (it holds {lock}); stop it first, or give this one its own [daemon] state_dir",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        dir = dir.display(),
        lock = path.display()
    )]
    Held {
        dir: PathBuf,
        path: PathBuf,
        pid: Option<u32>,
    },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock {path}: it is not a regular file; remove it")]
    NotAFile { path: PathBuf },
}

/// The held lock; dropping it releases the state directory.
#[derive(Debug)]
pub struct StateLock {
    // Held for its descriptor: the flock lives as long as it is open.
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock on `dir/freshd.lock` without waiting, or says who
    /// holds it.
    pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            return Err(LockError::NotAFile { path });
        }
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                return Err(LockError::Held {
                    dir: dir.to_owned(),
                    pid: holder_pid(&mut file),
                    path,
                });
            }
            Err(e) => return Err(io_err(e.into())),
        }
        if meta.permissions().mode() & 0o777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(io_err)?;
        }
        // Pid first, then cut what an older, longer pid left: a reader never
        // sees an empty file once a daemon has held the lock.
        let pid = format!("{}\n", std::process::id());
        file.rewind().map_err(io_err)?;
        file.write_all(pid.as_bytes()).map_err(io_err)?;
        file.set_len(pid.len() as u64).map_err(io_err)?;
        Ok(StateLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The pid the holder wrote, if it wrote one yet.
fn holder_pid(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_one_directory_is_refused_and_names_the_first_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        let LockError::Held { pid, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(*pid, Some(std::process::id()));
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("freshd.lock"), "{text}");
        drop(first);
        StateLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn lock_file_is_private_and_holds_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        // A longer stale pid from an earlier holder, world-readable.
        std::fs::write(&path, "123456789012\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let lock = StateLock::acquire(dir.path()).unwrap();
        assert_eq!(lock.path(), path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn symlinked_lock_file_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, "keep").unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join(LOCK_FILE)).unwrap();
        let err = StateLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "keep");
    }

    #[test]
    fn lock_path_that_is_a_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(LOCK_FILE)).unwrap();
        assert!(StateLock::acquire(dir.path()).is_err());
    }
}
