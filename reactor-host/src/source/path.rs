//! The `path` provider: a local directory, used in place. Copying it whole is only for the
//! writable layout (plugins built before the context overlay); the overlay gets a copy of the
//! Dockerfile alone.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::Error;
use crate::cancel::Cancel;

/// The source directory at `path`, absolute, symlinks resolved, checked to be a directory.
pub fn source_dir(path: &Path) -> Result<PathBuf, Error> {
    let failed = |reason: String| Error::PathSource { path: path.display().to_string(), reason };
    let dir = path.canonicalize().map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => failed("no such directory".to_owned()),
        _ => failed(e.to_string()),
    })?;
    if !dir.is_dir() {
        return Err(failed("not a directory".to_owned()));
    }
    Ok(dir)
}

/// Copies the file `from` (following a symlink) to `to`, making `to`'s directories. The copy
/// keeps the file's mode, made writable by its owner (plugins edit it), and its modification
/// time, as the build context would have sent the original.
pub fn copy_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to)?;
    let mut permissions = fs::metadata(to)?.permissions();
    if permissions.mode() & 0o200 == 0 {
        permissions.set_mode(permissions.mode() | 0o200);
        fs::set_permissions(to, permissions)?;
    }
    fs::File::options().write(true).open(to)?.set_modified(fs::metadata(from)?.modified()?)
}

/// Copies the tree at `from` to `to` (which must not exist yet), symlinks kept as symlinks.
pub fn copy_tree(from: &Path, to: &Path, cancel: &Cancel) -> Result<(), Error> {
    let failed = |path: &Path, reason: String| Error::Copy { path: path.display().to_string(), reason };
    if !from.is_dir() {
        return Err(failed(from, "not a directory".to_owned()));
    }
    for entry in WalkDir::new(from).follow_links(false) {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let entry = entry.map_err(|e| failed(from, e.to_string()))?;
        let rel = entry.path().strip_prefix(from).unwrap_or(entry.path());
        let target = to.join(rel);
        let kind = entry.file_type();
        let done = if kind.is_dir() {
            fs::create_dir_all(&target)
        } else if kind.is_symlink() {
            fs::read_link(entry.path()).and_then(|link| std::os::unix::fs::symlink(link, &target))
        } else if let Some(special) = crate::engine::special_file(kind) {
            // Copying a FIFO would wait for a writer; the context leaves special files out anyway.
            log::warn!("{} is {special}: not sent with the build context", entry.path().display());
            Ok(())
        } else {
            fs::copy(entry.path(), &target).map(|_| ())
        };
        done.map_err(|e| failed(entry.path(), e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_file_keeps_its_mode_and_time_and_is_writable_by_its_owner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let from = dir.path().join("Dockerfile");
        fs::write(&from, "FROM scratch\n").expect("write");
        fs::set_permissions(&from, fs::Permissions::from_mode(0o444)).expect("chmod");
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        fs::File::options().read(true).open(&from).expect("open").set_modified(old).ok();
        let to = dir.path().join("overlay/sub/Dockerfile");
        copy_file(&from, &to).expect("copied");
        assert_eq!(fs::read_to_string(&to).expect("read"), "FROM scratch\n");
        let metadata = fs::metadata(&to).expect("metadata");
        assert_eq!(metadata.permissions().mode() & 0o777, 0o644);
        assert_eq!(metadata.modified().expect("mtime"), fs::metadata(&from).expect("from").modified().expect("mtime"));
    }

    #[test]
    fn a_source_that_is_not_a_directory_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let err = source_dir(&missing).expect_err("missing");
        assert_eq!(
            err.to_string(),
            format!("the path source {} cannot be used: no such directory (check source.uri)", missing.display())
        );
        fs::write(dir.path().join("file"), "").expect("write");
        assert!(source_dir(&dir.path().join("file")).expect_err("a file").to_string().contains("not a directory"));
    }
}
