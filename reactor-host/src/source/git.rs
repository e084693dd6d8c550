//! The `git` provider: clone with libgit2 (through git2) and check out the requested commit.

use std::path::Path;

use git2::build::{CheckoutBuilder, RepoBuilder};
use git2::{FetchOptions, Oid, RemoteCallbacks, Repository};

use super::Error;
use crate::cancel::Cancel;

/// Clones `uri` into `dest`, checks out `commit` (a branch, tag or SHA; the remote's default
/// branch when `None`) and returns the SHA checked out. A local path `uri` is taken relative to
/// `base_dir`.
pub fn clone(uri: &str, commit: Option<&str>, base_dir: &Path, dest: &Path, cancel: &Cancel) -> Result<String, Error> {
    let url = clone_url(uri, base_dir);
    log::info!("cloning {url}");
    // Returning false from the progress callback makes libgit2 stop the transfer.
    let mut callbacks = RemoteCallbacks::new();
    callbacks.transfer_progress(|_| !cancel.is_cancelled());
    let mut fetch = FetchOptions::new();
    fetch.remote_callbacks(callbacks);
    // A full clone: libgit2 cannot fetch shallow over local transports, and a full history lets
    // any SHA on any branch be checked out.
    let repo = RepoBuilder::new().fetch_options(fetch).clone(&url, dest).map_err(|e| {
        if cancel.is_cancelled() {
            Error::Cancelled
        } else {
            Error::Clone { uri: uri.to_owned(), reason: e.message().to_owned() }
        }
    })?;
    let oid = match commit {
        None => repo.head().and_then(|head| head.peel_to_commit()).map(|c| c.id()).map_err(|e| Error::Clone {
            uri: uri.to_owned(),
            reason: format!("no default branch to check out: {}", e.message()),
        })?,
        Some(commit) => check_out(&repo, uri, commit)?,
    };
    log::info!("checked out {oid}");
    Ok(oid.to_string())
}

/// Initialises libgit2 ahead of cloning `url`. Must run before any other thread exists.
///
/// libgit2 sets up OpenSSL when it initialises, whatever the URL, and OpenSSL 3 takes about
/// 20 ms to parse the system's CA bundle: a third of reactor's whole overhead on a small build.
/// A clone that cannot use TLS (a local path, `file://`, `git://`, `http://`) gets an empty
/// bundle for that moment instead; an `https://` one is initialised on a background thread,
/// overlapping the rest of start-up.
pub fn prepare(url: &str) {
    let init = || drop(git2::Buf::new()); // any git2 constructor initialises it, once
    if url.to_ascii_lowercase().starts_with("https://") {
        std::thread::spawn(init);
        return;
    }
    const VARS: [&str; 2] = ["SSL_CERT_FILE", "SSL_CERT_DIR"];
    let saved = VARS.map(std::env::var_os);
    // No other thread exists yet to read the environment while it is changed (the caller's
    // contract); libgit2 reads it once, here.
    std::env::set_var("SSL_CERT_FILE", "/dev/null");
    init();
    for (var, value) in VARS.iter().zip(saved) {
        match value {
            Some(value) => std::env::set_var(var, value),
            None => std::env::remove_var(var),
        }
    }
}

/// URLs pass through; anything else is a local path, made absolute against `base_dir`.
pub fn clone_url(uri: &str, base_dir: &Path) -> String {
    let is_url = uri.contains("://") || is_scp_like(uri);
    if is_url || Path::new(uri).is_absolute() {
        uri.to_owned()
    } else {
        base_dir.join(uri).display().to_string()
    }
}

/// `user@host:path`, git's scp-like ssh syntax.
fn is_scp_like(uri: &str) -> bool {
    match (uri.find(':'), uri.find('/')) {
        (Some(colon), Some(slash)) => colon < slash && uri[..colon].contains('@'),
        (Some(colon), None) => uri[..colon].contains('@'),
        _ => false,
    }
}

/// Checks out `commit`, tried as a branch of the remote, then a tag, then any revision (a SHA).
fn check_out(repo: &Repository, uri: &str, commit: &str) -> Result<Oid, Error> {
    let candidates = [format!("refs/remotes/origin/{commit}"), format!("refs/tags/{commit}"), commit.to_owned()];
    let target = candidates
        .iter()
        .find_map(|spec| repo.revparse_single(spec).ok()?.peel_to_commit().ok())
        .ok_or_else(|| Error::NoSuchCommit { uri: uri.to_owned(), commit: commit.to_owned() })?;
    let failed = |e: git2::Error| Error::Checkout {
        uri: uri.to_owned(),
        commit: commit.to_owned(),
        reason: e.message().to_owned(),
    };
    repo.checkout_tree(target.as_object(), Some(CheckoutBuilder::new().force())).map_err(failed)?;
    repo.set_head_detached(target.id()).map_err(failed)?;
    Ok(target.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pass_and_relative_paths_are_anchored() {
        let base = Path::new("/builds");
        assert_eq!(clone_url("https://example.com/r.git", base), "https://example.com/r.git");
        assert_eq!(clone_url("file:///srv/r", base), "file:///srv/r");
        assert_eq!(clone_url("git@host:org/r.git", base), "git@host:org/r.git");
        assert_eq!(clone_url("/srv/r", base), "/srv/r");
        assert_eq!(clone_url("repos/r", base), "/builds/repos/r");
    }
}
