//! Fetching the source tree a build starts from, into a temporary directory reactor owns, and
//! finding the Dockerfile in it.
//!
//! Plugins may edit what they find there (the Dockerfile above all), so even a `path` source is
//! copied: the user's own tree is never changed.

mod git;
mod path;

use std::path::{Component, Path, PathBuf};

use tempfile::TempDir;

use crate::cancel::Cancel;

/// Where a build's source comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Provider {
    /// A git repository: any URL git2 can clone (`https://`, `git://`, `file://`) or a local path.
    Git,
    /// A local directory.
    Path,
}

impl Provider {
    pub fn name(&self) -> &'static str {
        match self {
            Provider::Git => "git",
            Provider::Path => "path",
        }
    }
}

/// A source as a build request names it.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceSpec {
    pub provider: Provider,
    /// The URI as given (for messages and results).
    pub uri: String,
    /// The commit, branch or tag to check out (git only); `None` means the remote's default branch.
    pub commit: Option<String>,
    /// The Dockerfile, or the directory holding it, relative to the source root.
    pub dockerfile_path: Option<String>,
    /// Whether to fetch the git submodules too, recursively (git only).
    pub submodules: bool,
}

/// A fetched source: the tree on disk, removed when this is dropped.
#[derive(Debug)]
pub struct FetchedSource {
    /// Holds the temporary directory alive.
    _tmp: TempDir,
    /// The root of the fetched tree.
    pub root: PathBuf,
    /// The resolved commit SHA (git only).
    pub commit: Option<String>,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
}

/// What went wrong fetching the source or finding its Dockerfile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot make a temporary directory: {0}")]
    TempDir(std::io::Error),
    #[error("cannot clone {uri}: {reason}")]
    Clone { uri: String, reason: String },
    #[error("{uri} has no commit, branch or tag '{commit}'")]
    NoSuchCommit { uri: String, commit: String },
    #[error("cannot check out '{commit}' of {uri}: {reason}")]
    Checkout { uri: String, commit: String, reason: String },
    #[error("cannot copy {path}: {reason}")]
    Copy { path: String, reason: String },
    #[error("dockerfile_path '{0}' points outside the source; give a path inside it")]
    OutsideSource(String),
    #[error("Dockerfile '{0}' doesn't exist in the source (check dockerfile_path)")]
    NoDockerfile(String),
    #[error("fetching the source was cancelled")]
    Cancelled,
}

/// Does the provider's one-time set-up for `spec`. Call it from the main thread before any
/// other thread exists (it may briefly change the environment; see `git::prepare`).
pub fn prepare(spec: &SourceSpec, base_dir: &Path) {
    if spec.provider == Provider::Git {
        git::prepare(&git::clone_url(&spec.uri, base_dir));
    }
}

/// Fetches `spec` into a new temporary directory. A relative local path or `uri` is taken
/// relative to `base_dir` (the build.json's directory).
/// Stops early, with [`Error::Cancelled`], once `cancel` is cancelled.
pub fn fetch(spec: &SourceSpec, base_dir: &Path, cancel: &Cancel) -> Result<FetchedSource, Error> {
    let tmp = tempfile::Builder::new().prefix("reactor-source-").tempdir().map_err(Error::TempDir)?;
    let root = tmp.path().join("source");
    let commit = match spec.provider {
        Provider::Git => Some(git::clone(&spec.uri, spec.commit.as_deref(), spec.submodules, base_dir, &root, cancel)?),
        Provider::Path => {
            path::copy_tree(&local_path(&spec.uri, base_dir), &root, cancel)?;
            None
        }
    };
    let dockerfile = locate_dockerfile(&root, spec.dockerfile_path.as_deref().unwrap_or(""))?;
    Ok(FetchedSource { _tmp: tmp, root, commit, dockerfile })
}

/// A `path` uri (with or without `file://`) as a local path, relative ones under `base_dir`.
fn local_path(uri: &str, base_dir: &Path) -> PathBuf {
    let path = Path::new(uri.strip_prefix("file://").unwrap_or(uri));
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

/// Finds the Dockerfile as atomic-reactor does: a `dockerfile_path` ending in `Dockerfile` names
/// the file, anything else the directory that holds a `Dockerfile`. It must stay inside `root`.
pub fn locate_dockerfile(root: &Path, dockerfile_path: &str) -> Result<PathBuf, Error> {
    let relative = Path::new(dockerfile_path);
    let escapes =
        relative.components().any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_)));
    if escapes {
        return Err(Error::OutsideSource(dockerfile_path.to_owned()));
    }
    let file = if dockerfile_path.ends_with("Dockerfile") {
        root.join(relative)
    } else {
        root.join(relative).join("Dockerfile")
    };
    let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
    if !file.is_file() {
        return Err(Error::NoDockerfile(shown));
    }
    // A symlink in the tree could still lead out of it.
    let (Ok(real_root), Ok(real_file)) = (root.canonicalize(), file.canonicalize()) else {
        return Err(Error::NoDockerfile(shown));
    };
    if !real_file.starts_with(&real_root) {
        return Err(Error::OutsideSource(dockerfile_path.to_owned()));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, "FROM scratch\n").expect("write");
        }
        dir
    }

    #[test]
    fn a_path_ending_in_dockerfile_is_the_file_anything_else_a_directory() {
        let t = tree(&["Dockerfile", "sub/Dockerfile", "sub/prod.Dockerfile"]);
        assert_eq!(locate_dockerfile(t.path(), "").expect("root"), t.path().join("Dockerfile"));
        assert_eq!(locate_dockerfile(t.path(), "sub/").expect("dir"), t.path().join("sub/Dockerfile"));
        assert_eq!(locate_dockerfile(t.path(), "sub").expect("dir"), t.path().join("sub/Dockerfile"));
        assert_eq!(
            locate_dockerfile(t.path(), "sub/prod.Dockerfile").expect("file"),
            t.path().join("sub/prod.Dockerfile")
        );
    }

    #[test]
    fn a_missing_dockerfile_is_named() {
        let t = tree(&["Dockerfile"]);
        let err = locate_dockerfile(t.path(), "nope/").expect_err("missing");
        assert_eq!(err.to_string(), "Dockerfile 'nope/Dockerfile' doesn't exist in the source (check dockerfile_path)");
    }

    #[test]
    fn paths_leaving_the_source_are_refused() {
        let t = tree(&["Dockerfile"]);
        assert!(matches!(locate_dockerfile(t.path(), "../"), Err(Error::OutsideSource(_))));
        assert!(matches!(locate_dockerfile(t.path(), "/etc/"), Err(Error::OutsideSource(_))));
        std::os::unix::fs::symlink("/", t.path().join("out")).expect("symlink");
        std::fs::create_dir_all(t.path().join("x")).expect("mkdir");
        assert!(locate_dockerfile(t.path(), "out/tmp/").is_err());
    }
}
