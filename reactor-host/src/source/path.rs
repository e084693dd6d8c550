//! The `path` provider: a copy of a local directory, symlinks kept as symlinks.

use std::fs;
use std::path::Path;

use walkdir::WalkDir;

use super::Error;
use crate::cancel::Cancel;

/// Copies the tree at `from` to `to` (which must not exist yet).
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
        } else {
            fs::copy(entry.path(), &target).map(|_| ())
        };
        done.map_err(|e| failed(entry.path(), e.to_string()))?;
    }
    Ok(())
}
