//! Files, read and written defensively.
//!
//! Every license, key and watermark write goes through [`write_file`]: the bytes
//! go to a temporary file in the same directory, are flushed to disk, renamed
//! over the target, and the directory entry is flushed too. A crash at any
//! point leaves either the old file or the new one, never a mix or nothing.
//!
//! Every read of a document, key, facts snapshot or store record goes through
//! [`read_capped`]: only a regular file is read (a FIFO or device is refused
//! without blocking), and the cap counts the bytes actually read, not the size
//! the file reports (which is 0 for `/dev/zero`). Inside the store, links are
//! not followed ([`Links::Refuse`]), so a link planted there cannot point
//! nodelock at another file.

use std::io::{self, Read, Write};
use std::path::Path;

/// Whether a read follows a symbolic link at the path's last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow it: a path the user named on the command line.
    Follow,
    /// Refuse it: a path inside the store, which nodelock names itself.
    Refuse,
}

/// Why a capped read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The OS refused or failed (missing file, permission, a refused link).
    #[error("{0}")]
    Io(#[from] io::Error),
    /// More than the cap was there to read.
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: u64,
    },
    /// A directory, FIFO, socket or device where a file belongs.
    #[error("not a regular file")]
    NotAFile,
}

impl ReadError {
    /// True when the file does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

/// Reads at most `limit` bytes of the regular file at `path`.
pub fn read_capped(path: &Path, limit: u64, links: Links) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path, links)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Opens `path` for reading if it is a regular file, without blocking on a
/// FIFO and (with [`Links::Refuse`]) without following a final link.
#[cfg(unix)]
fn open_regular(path: &Path, links: Links) -> Result<std::fs::File, ReadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(ReadError::NotAFile);
    }
    Ok(file)
}

#[cfg(not(unix))]
fn open_regular(path: &Path, links: Links) -> Result<std::fs::File, ReadError> {
    if links == Links::Refuse && std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(ReadError::NotAFile);
    }
    let file = std::fs::File::open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(ReadError::NotAFile);
    }
    Ok(file)
}

/// Opens (creating) the lock file at `path` for writing, refusing a link
/// there: a dangling link would otherwise make nodelock create its target.
pub fn open_lock_file(path: &Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::File::options();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600);
    }
    #[cfg(not(unix))]
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the lock file is a link",
        ));
    }
    options.open(path)
}

/// Creates an empty owner-only file at `path` unless something is there.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    let mut options = std::fs::File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether users other than the owner may read `path` (group or world bits
/// on Unix; never elsewhere, where ACLs decide).
pub fn readable_by_others(path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o044 != 0)
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).map(|_| false)
    }
}

/// Creates `dir` and its parents; a directory it creates is owner-only (0700
/// on Unix) whatever the umask, since it holds keys or the ledger.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Atomically writes `bytes` to `path`.
///
/// `private` makes the file owner-only (mode 0600 on Unix; the temporary file is
/// created that way, so the secret is never readable by others, even briefly).
/// `no_clobber` fails with `AlreadyExists` instead of replacing an existing file.
pub fn write_file(path: &Path, bytes: &[u8], private: bool, no_clobber: bool) -> io::Result<()> {
    // tempfile hands out absolute temporary paths; its no-clobber persist then
    // fails on a relative target, so resolve the target the same way.
    let path = &std::path::absolute(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".nodelock-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    if !private {
        set_readable(tmp.as_file())?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if no_clobber {
        tmp.persist_noclobber(path).map_err(|e| e.error)?;
    } else {
        tmp.persist(path).map_err(|e| e.error)?;
    }
    sync_dir(dir)
}

#[cfg(unix)]
fn set_readable(file: &std::fs::File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_readable(_file: &std::fs::File) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.lic");
        write_file(&path, b"first version", false, false).unwrap();
        write_file(&path, b"second", false, false).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn no_clobber_keeps_the_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_file(&path, b"old", true, true).unwrap();
        let err = write_file(&path, b"new", true, true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn relative_paths_work_with_and_without_clobbering() {
        let dir = tempfile::tempdir().unwrap();
        let rel = dir
            .path()
            .strip_prefix(std::env::current_dir().unwrap())
            .map(Path::to_path_buf);
        // Only meaningful when the temp dir is below the current directory; build a
        // relative path through `..` otherwise.
        let rel = rel.unwrap_or_else(|_| {
            let depth = std::env::current_dir().unwrap().components().count() - 1;
            let mut p = std::path::PathBuf::new();
            (0..depth).for_each(|_| p.push(".."));
            p.join(dir.path().strip_prefix("/").unwrap())
        });
        write_file(&rel.join("a"), b"1", true, true).unwrap();
        write_file(&rel.join("a"), b"2", false, false).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"2");
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_file(&path, b"secret", true, false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
