//! Files freshd writes or reads, safe against what may already be at their
//! paths.
//!
//! - Whole files ([`write_private`]) go to a temporary file in the same
//!   directory, fsynced, renamed over the target, and the directory fsynced,
//!   so a crash leaves the old file or the new one.
//! - Records appended to a file ([`append_private`]) go in one `write` of
//!   the whole record; a short or failed write is cut off again, so the
//!   file only ever holds whole records (a full disk never leaves half a
//!   JSON line).
//! - Nothing is followed and nothing but a regular file is written: a
//!   symbolic link at the path is refused (`O_NOFOLLOW`), naming the path,
//!   and so is a FIFO, socket, device or directory (a FIFO would block the
//!   writer until something reads it). A file that others may read is
//!   brought to 0600.
//! - Files a person names ([`read_regular`]) must be regular files and are
//!   read up to a cap: `/dev/zero` or a FIFO given as a config is refused
//!   at once instead of being read forever.

use std::fs::{self, File, FileType, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// Writes `bytes` to `path` atomically with mode 0600, creating the parent
/// directory (mode 0700) if needed. A symbolic link or anything but a
/// regular file at `path` is refused and left as it is.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, bytes, 0o600)
}

/// Writes `bytes` to `path` atomically with `mode`; refuses a path where
/// something other than a regular file is (a link is never followed).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_private_dir(dir)?;
    check_target(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

/// Refuses `path` unless nothing or a regular file is there (not followed).
pub fn check_target(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(m) => Err(refused(path, kind_of(m.file_type()))),
    }
}

/// What a file type is, in words, for messages.
pub fn kind_of(t: FileType) -> &'static str {
    if t.is_symlink() {
        "a symbolic link"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn refused(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{} is {what}; freshd only writes regular files and never follows a link there (remove it or choose another path)",
            path.display()
        ),
    )
}

/// Opens `path` for appending (created 0600), without following a symbolic
/// link and without blocking on a FIFO; refuses anything but a regular
/// file and brings a file others may read to 0600.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused(path, "a symbolic link"),
            // A FIFO (or socket) that nothing reads: opening it would block.
            Some(libc::ENXIO) => refused(path, "a FIFO"),
            Some(libc::EISDIR) => refused(path, "a directory"),
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refused(path, kind_of(meta.file_type())));
    }
    make_private(&file, path, &meta)?;
    Ok(file)
}

/// Brings `file` (at `path`) to mode 0600 if others may read or write it.
fn make_private(file: &File, path: &Path, meta: &Metadata) -> io::Result<()> {
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    tracing::warn!(
        "{} had mode {mode:04o}; freshd made it 0600 (only its owner may read it)",
        path.display()
    );
    Ok(())
}

/// Appends `record` to `path` (see [`open_private_append`]) with one write,
/// then fsyncs. A short or failed write is cut off again, so the file ends
/// with a whole record or as it was; the error says what happened.
pub fn append_private(path: &Path, record: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        ensure_private_dir(dir)?;
    }
    let mut file = open_private_append(path)?;
    let before = file.metadata()?.len();
    let result = file
        .write(record)
        .and_then(|n| {
            if n == record.len() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!(
                        "only {n} of {} bytes could be written (is the disk full?)",
                        record.len()
                    ),
                ))
            }
        })
        .and_then(|()| file.sync_data());
    let Err(e) = result else {
        return Ok(());
    };
    match file.set_len(before) {
        Ok(()) => Err(io::Error::new(
            e.kind(),
            format!("{e}; the record was not added"),
        )),
        Err(t) => Err(io::Error::new(
            e.kind(),
            format!("{e}; cutting the partial record off failed too: {t}"),
        )),
    }
}

/// Reads the regular file at `path` (a link to one is fine), at most
/// `limit` bytes: anything else (a FIFO, `/dev/zero`, a directory) is
/// refused without blocking, and a longer file is an error of kind
/// [`io::ErrorKind::FileTooLarge`].
pub fn read_regular(path: &Path, limit: u64) -> io::Result<(Vec<u8>, Metadata)> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}, not a regular file", kind_of(meta.file_type())),
        ));
    }
    let mut bytes = Vec::new();
    (&mut file).take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!("it is larger than {limit} bytes"),
        ));
    }
    Ok((bytes, meta))
}

/// [`read_regular`] on a thread of its own, given up after `deadline` (a
/// file on a hung network mount): the caller gets an error of kind
/// [`io::ErrorKind::TimedOut`] and the thread is left to finish.
pub fn read_regular_within(
    path: &Path,
    limit: u64,
    deadline: Duration,
) -> io::Result<(Vec<u8>, Metadata)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = path.to_owned();
    std::thread::Builder::new()
        .name("freshd-read".into())
        .spawn(move || {
            let _ = tx.send(read_regular(&owned, limit));
        })?;
    rx.recv_timeout(deadline).unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("it could not be read within {} s", deadline.as_secs()),
        ))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn appends_refuse_links_and_fix_wide_modes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "keep\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = append_private(&link, b"x\n").unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep\n");

        let wide = dir.path().join("wide");
        fs::write(&wide, "").unwrap();
        fs::set_permissions(&wide, fs::Permissions::from_mode(0o644)).unwrap();
        append_private(&wide, b"{}\n").unwrap();
        let mode = fs::metadata(&wide).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn whole_writes_refuse_a_link_at_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "keep").unwrap();
        let link = dir.path().join("state");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = write_private(&link, b"new").unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn reads_refuse_devices_and_cap_the_size() {
        let e = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(e.to_string().contains("a character device"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, "0123456789").unwrap();
        assert_eq!(read_regular(&f, 10).unwrap().0.len(), 10);
        let e = read_regular(&f, 9).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::FileTooLarge);
    }
}
