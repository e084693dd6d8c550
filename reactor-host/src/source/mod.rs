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
pub(crate) mod git;
mod leftovers;
mod path;

use std::path::{Component, Path, PathBuf};

use tempfile::TempDir;

use crate::cancel::Cancel;
use crate::credentials::redact_url;

pub use git::Timeouts;

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
    #[error(
        "cannot make a temporary directory in TMPDIR {tmpdir}: {0}; set TMPDIR to a directory you can write to",
        tmpdir = std::env::temp_dir().display()
    )]
    TempDir(std::io::Error),
    #[error("cannot clone {uri}: {reason}; check source.uri, and that its server is up and serves the repository")]
    Clone { uri: String, reason: String },
    #[error(
        "cannot clone {uri}: {reason}; check that the server is up and serves the repository, \
         or allow more time with --git-timeout SECONDS (REACTOR_GIT_TIMEOUT)"
    )]
    TimedOut { uri: String, reason: String },
    #[error("the git repository {path} does not exist (check source.uri)")]
    NoRepository { path: String },
    #[error("{path} is not a git repository (check source.uri)")]
    NotARepository { path: String },
    #[error(
        "TMPDIR {tmpdir} is full: {what} {path} ({cause}); free space there, or set TMPDIR to a \
         directory with more room"
    )]
    NoSpace { tmpdir: String, what: String, path: String, cause: String },
    #[error(
        "{uri} has no commit, branch or tag '{commit}'; give one it has (source.provider_params.git_commit, or \
         --commit)"
    )]
    NoSuchCommit { uri: String, commit: String },
    #[error(
        "cannot check out '{commit}' of {uri}: {reason}; check that the repository is whole (git fsck), or give \
         another commit"
    )]
    Checkout { uri: String, commit: String, reason: String },
    #[error("cannot copy {path}: {reason}; check that everything under it is readable")]
    Copy { path: String, reason: String },
    #[error("the path source {path} cannot be used: {reason} (check source.uri)")]
    PathSource { path: String, reason: String },
    #[error(
        "cannot put the Dockerfile into the context overlay {path}: {reason}; check that TMPDIR is writable and has \
         room"
    )]
    Overlay { path: String, reason: String },
    #[error("dockerfile_path '{0}' points outside the source; give a path inside it")]
    OutsideSource(String),
    #[error("the Dockerfile {shown} is outside the source: {link} is a symlink to {target} ({real}); make it a file or a link inside the source")]
    DockerfileLinkOutside { shown: String, link: String, target: String, real: String },
    #[error("Dockerfile '{0}' doesn't exist in the source (check dockerfile_path)")]
    NoDockerfile(String),
    #[error("fetching the source was cancelled; nothing to fix: run the build again to build it")]
    Cancelled,
}

/// Does the provider's one-time set-up for `spec`, with the limits a git fetch waits for a server
/// within. Call it from the main thread before any other thread exists (it may briefly change the
/// environment; see `git::prepare`).
pub fn prepare(spec: &SourceSpec, base_dir: &Path, timeouts: Timeouts) {
    if spec.provider == Provider::Git {
        git::set_timeouts(timeouts);
        git::prepare(&git::clone_url(&spec.uri, base_dir));
    }
}

/// A new temporary directory for one build's source, named after this reactor so that the next
/// one can collect it should this one be killed (see [`leftovers`]).
pub fn temp_dir() -> Result<TempDir, Error> {
    let prefix = leftovers::Owner::this_process().map_or_else(|| leftovers::PREFIX.to_owned(), |me| me.prefix());
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir()
        .map_err(|e| no_space(Error::TempDir(e), &std::env::temp_dir(), None))
}

/// Removes the temporary source directories in TMPDIR that killed reactors left behind.
pub fn collect_leftovers() {
    leftovers::collect(&std::env::temp_dir());
}

/// Removes a temporary source directory when dropped, unless [`RemoveOnDrop::keep`] was called:
/// for a fetch that was abandoned while it still ran (a server that never answers), whose own
/// clean-up would come only when the fetch returns.
#[derive(Debug)]
pub struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    pub fn new(dir: &Path) -> RemoveOnDrop {
        RemoveOnDrop(Some(dir.to_path_buf()))
    }

    /// The fetch returned the directory: it goes with the [`FetchedSource`].
    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else {
            return;
        };
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => log::debug!("removed the temporary source {}", dir.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("cannot remove the temporary source {}: {e}", dir.display()),
        }
    }
}

/// Fetches `spec` into a new temporary directory; see [`fetch_into`].
#[cfg(test)]
pub fn fetch(spec: &SourceSpec, base_dir: &Path, layout: Layout, cancel: &Cancel) -> Result<FetchedSource, Error> {
    fetch_into(temp_dir()?, spec, base_dir, layout, cancel)
}

/// Fetches `spec` (a git clone into `tmp`, a path source where it is, or copied into `tmp` in the
/// writable layout) and lays out the overlay in `tmp`. A relative local path or `uri` is taken
/// relative to `base_dir` (the build.json's directory). Stops early, with [`Error::Cancelled`],
/// once `cancel` is cancelled. A file system that fills up is named as TMPDIR.
pub fn fetch_into(
    tmp: TempDir,
    spec: &SourceSpec,
    base_dir: &Path,
    layout: Layout,
    cancel: &Cancel,
) -> Result<FetchedSource, Error> {
    match lay_out(&tmp, spec, base_dir, layout, cancel) {
        Ok((tree, overlay, commit, dockerfile)) => Ok(FetchedSource { _tmp: tmp, tree, overlay, commit, dockerfile }),
        Err(e) => Err(no_space(e, &std::env::temp_dir(), Some(tmp.path()))),
    }
}

/// The tree, the overlay, the commit and the Dockerfile of `spec`, fetched into `tmp`.
fn lay_out(
    tmp: &TempDir,
    spec: &SourceSpec,
    base_dir: &Path,
    layout: Layout,
    cancel: &Cancel,
) -> Result<(PathBuf, PathBuf, Option<String>, PathBuf), Error> {
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
    Ok((tree, overlay, commit, dockerfile))
}

/// `error` as [`Error::NoSpace`] when it says the file system is full, `dir` being the build's
/// temporary directory in `tmpdir`, if it was made (libgit2's messages carry the system's text, so
/// the text is what tells).
fn no_space(error: Error, tmpdir: &Path, dir: Option<&Path>) -> Error {
    let text = match &error {
        Error::TempDir(e) => e.to_string(),
        Error::Clone { reason, .. }
        | Error::Checkout { reason, .. }
        | Error::Copy { reason, .. }
        | Error::Overlay { reason, .. } => reason.clone(),
        _ => return error,
    };
    let Some(cause) = ["No space left on device", "Disk quota exceeded"].into_iter().find(|m| text.contains(m)) else {
        return error;
    };
    let what = match &error {
        Error::TempDir(_) => "cannot make a directory in".to_owned(),
        Error::Clone { uri, .. } | Error::Checkout { uri, .. } => {
            format!("cannot write the checkout of {} into", redact_url(uri))
        }
        Error::Copy { .. } => "cannot copy the path source into".to_owned(),
        _ => "cannot copy the Dockerfile into".to_owned(),
    };
    Error::NoSpace {
        tmpdir: tmpdir.display().to_string(),
        what,
        path: dir.unwrap_or(tmpdir).display().to_string(),
        cause: cause.to_owned(),
    }
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
        // Name the link as it is written (the file or a directory on its way), not the (maybe
        // empty) dockerfile_path that led to it.
        let mut at = root.to_path_buf();
        let mut link = None;
        for step in file.strip_prefix(root).unwrap_or(&file).components() {
            at.push(step);
            if let Ok(target) = std::fs::read_link(&at) {
                link = Some((at.strip_prefix(root).unwrap_or(&at).display().to_string(), target.display().to_string()));
                break;
            }
        }
        let (link, target) = link.unwrap_or_else(|| (shown.clone(), real_file.display().to_string()));
        return Err(Error::DockerfileLinkOutside { shown, link, target, real: real_file.display().to_string() });
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
    fn a_full_file_system_is_named_as_tmpdir_with_what_to_do() {
        let (tmpdir, dir) = (Path::new("/small"), Path::new("/small/reactor-source-1-2-abc"));
        let full = |reason: &str| Error::Clone { uri: "https://u:pw@h/r.git".into(), reason: reason.into() };
        let named = no_space(full("failed to write pack: No space left on device"), tmpdir, Some(dir));
        assert_eq!(
            named.to_string(),
            "TMPDIR /small is full: cannot write the checkout of https://u:***@h/r.git into \
             /small/reactor-source-1-2-abc (No space left on device); free space there, or set TMPDIR to a \
             directory with more room"
        );
        let copy = Error::Copy { path: "/src/big".into(), reason: "Disk quota exceeded (os error 122)".into() };
        let named = no_space(copy, tmpdir, Some(dir)).to_string();
        assert!(named.contains("cannot copy the path source into /small/reactor-source-1-2-abc (Disk quota exceeded)"));
        let temp = Error::TempDir(std::io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(no_space(temp, tmpdir, None)
            .to_string()
            .starts_with("TMPDIR /small is full: cannot make a directory in /small ("));
        // Anything else is left as it is.
        assert!(matches!(no_space(full("connection refused"), tmpdir, Some(dir)), Error::Clone { .. }));
        assert!(matches!(no_space(Error::Cancelled, tmpdir, Some(dir)), Error::Cancelled));
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
        // A Dockerfile linked out of the source is named with its link, whatever led to it.
        let outside = tree(&["Dockerfile"]);
        let linked = tree(&[]);
        std::os::unix::fs::symlink(outside.path().join("Dockerfile"), linked.path().join("Dockerfile"))
            .expect("symlink");
        let err = locate_dockerfile(linked.path(), "").expect_err("outside").to_string();
        let target = outside.path().join("Dockerfile").display().to_string();
        assert!(
            err.starts_with(&format!(
                "the Dockerfile Dockerfile is outside the source: Dockerfile is a symlink to {target} ("
            )),
            "{err}"
        );
    }
}
