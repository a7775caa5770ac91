//! Crash-safe file replacement.
//!
//! Every license, key and watermark write goes through [`write_file`]: the bytes
//! go to a temporary file in the same directory, are flushed to disk, renamed
//! over the target, and the directory entry is flushed too. A crash at any
//! point leaves either the old file or the new one, never a mix or nothing.

use std::io::{self, Write};
use std::path::Path;

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
