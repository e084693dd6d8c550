//! Fetching the source tree a build starts from, finding the Dockerfile in it, and laying out the
//! context overlay where plugins make their changes.
//!
//! The source *tree* is never written: a `path` source is the user's own directory, used in
//! place (the docker CLI streams it as it is, and so does reactor), and a `git` source is
//! reactor's checkout. Everything plugins change lives in the *overlay*, a temporary directory
//! reactor owns that starts with a copy of the Dockerfile (plugins edit it); the build context
//! is the overlay over the tree (see `engine::context`).
//!
//! Plugins built before the overlay existed (reactor-plugin-api < 1.2) may write into the
//! context directory they are given: for them the [`Layout::Writable`] copies a `path` source as
//! reactor did before, and that copy (or a git checkout) is both tree and overlay.
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

/// Where plugins may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The tree is used in place and never written; plugins write to a separate overlay.
    Overlay,
    /// The tree is reactor's own (a `path` source is copied) and is the overlay too, for plugins
    /// that write into the context directory they were given.
    Writable,
}

/// A fetched source: the tree and the overlay; what reactor made is removed when this is dropped.
#[derive(Debug)]
pub struct FetchedSource {
    /// Holds the temporary directory (the overlay, a checkout or a copy) alive.
    _tmp: TempDir,
    /// The root of the source tree: the user's directory for `path`, reactor's checkout for
    /// `git`, a copy in the writable layout. Never written in the overlay layout.
    pub tree: PathBuf,
    /// The root of the overlay, which mirrors the tree's layout; `tree` itself in the writable
    /// layout.
    pub overlay: PathBuf,
    /// The resolved commit SHA (git only).
    pub commit: Option<String>,
    /// The Dockerfile's path relative to both roots.
    dockerfile: PathBuf,
}

impl FetchedSource {
    /// The Dockerfile plugins edit and the engine builds: the overlay's copy.
    pub fn dockerfile(&self) -> PathBuf {
        self.overlay.join(&self.dockerfile)
    }

    /// The build context directory in the tree (the Dockerfile's directory).
    pub fn source_context_dir(&self) -> PathBuf {
        match self.dockerfile.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            Some(dir) => self.tree.join(dir),
            // Not `tree.join("")`, which would end in a '/'.
            None => self.tree.clone(),
        }
    }
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
    #[error("the path source {path} cannot be used: {reason} (check source.uri)")]
    PathSource { path: String, reason: String },
    #[error("cannot put the Dockerfile into the context overlay {path}: {reason}")]
    Overlay { path: String, reason: String },
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

/// Fetches `spec` (a git clone into a new temporary directory, a path source where it is, or
/// copied there in the writable layout) and lays out the overlay. A relative local path or `uri`
/// is taken relative to `base_dir` (the build.json's directory).
/// Stops early, with [`Error::Cancelled`], once `cancel` is cancelled.
pub fn fetch(spec: &SourceSpec, base_dir: &Path, layout: Layout, cancel: &Cancel) -> Result<FetchedSource, Error> {
    let tmp = tempfile::Builder::new().prefix("reactor-source-").tempdir().map_err(Error::TempDir)?;
    let root = tmp.path().join("source");
    // The tree is reactor's checkout or copy, unless a path source is used in place.
    let mut tree = root.clone();
    let commit = match spec.provider {
        Provider::Git => Some(git::clone(&spec.uri, spec.commit.as_deref(), spec.submodules, base_dir, &root, cancel)?),
        Provider::Path => {
            let dir = path::source_dir(&local_path(&spec.uri, base_dir))?;
            match layout {
                Layout::Overlay => tree = dir,
                Layout::Writable => path::copy_tree(&dir, &root, cancel)?,
            }
            None
        }
    };
    let dockerfile = locate_dockerfile(&tree, spec.dockerfile_path.as_deref().unwrap_or(""))?;
    let dockerfile = dockerfile.strip_prefix(&tree).unwrap_or(&dockerfile).to_path_buf();
    let overlay = match layout {
        Layout::Writable => tree.clone(),
        Layout::Overlay => {
            let overlay = tmp.path().join("overlay");
            path::copy_file(&tree.join(&dockerfile), &overlay.join(&dockerfile))
                .map_err(|e| Error::Overlay { path: overlay.display().to_string(), reason: e.to_string() })?;
            overlay
        }
    };
    Ok(FetchedSource { _tmp: tmp, tree, overlay, commit, dockerfile })
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

    fn path_spec(uri: &Path, dockerfile_path: &str) -> SourceSpec {
        SourceSpec {
            provider: Provider::Path,
            uri: uri.display().to_string(),
            commit: None,
            dockerfile_path: Some(dockerfile_path.to_owned()),
            submodules: false,
        }
    }

    #[test]
    fn a_path_source_is_used_in_place_with_its_dockerfile_copied_into_the_overlay() {
        let t = tree(&["sub/Dockerfile", "sub/app.txt"]);
        let fetched =
            fetch(&path_spec(t.path(), "sub/"), Path::new("/"), Layout::Overlay, &Cancel::default()).expect("fetched");
        let real = t.path().canonicalize().expect("canonical");
        assert_eq!(fetched.tree, real);
        assert_eq!(fetched.source_context_dir(), real.join("sub"));
        assert_eq!(fetched.dockerfile(), fetched.overlay.join("sub/Dockerfile"));
        assert!(!fetched.overlay.starts_with(&real), "the overlay is reactor's own");
        assert_eq!(std::fs::read_to_string(fetched.dockerfile()).expect("copied"), "FROM scratch\n");
        // Nothing else is in the overlay.
        let entries: Vec<_> = walkdir::WalkDir::new(&fetched.overlay).min_depth(1).into_iter().collect();
        assert_eq!(entries.len(), 2, "sub/ and sub/Dockerfile: {entries:?}");
        let overlay = fetched.overlay.clone();
        drop(fetched);
        assert!(!overlay.exists(), "the overlay goes with the build");
        assert!(t.path().join("sub/app.txt").is_file(), "the source stays");
    }

    #[test]
    fn the_writable_layout_copies_a_path_source_and_uses_the_copy_as_both() {
        let t = tree(&["Dockerfile", "app.txt"]);
        let fetched =
            fetch(&path_spec(t.path(), ""), Path::new("/"), Layout::Writable, &Cancel::default()).expect("fetched");
        assert_eq!(fetched.tree, fetched.overlay);
        assert!(!fetched.tree.starts_with(t.path().canonicalize().expect("canonical")));
        assert!(fetched.tree.join("app.txt").is_file());
        assert_eq!(fetched.dockerfile(), fetched.tree.join("Dockerfile"));
        assert_eq!(fetched.source_context_dir(), fetched.tree);
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
